"""Gates: budgets (effplan check) and the design search."""
