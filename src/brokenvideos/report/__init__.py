"""Tables (Markdown, CSV, LaTeX) and figures."""
