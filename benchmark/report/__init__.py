"""Records to frames, tables and figures: the leaderboard, statistics, robustness, plots."""
