"""Reports: text, CSV, JSON and Markdown tables, plots."""
