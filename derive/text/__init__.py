"""Text for people: the LaTeX printer, escaping, the document model and its rendering through templates."""
