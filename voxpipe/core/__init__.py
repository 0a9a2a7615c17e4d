"""Abstract interfaces, the data types flowing between them, and the Pipeline composing them."""
