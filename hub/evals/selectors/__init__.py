"""Reads for evals, by concern: `scores` (what every page derives from finished runs), `leaderboards`,
`cards` (eval cards) and `runs` (single runs and who may see them)."""
