"""The bank of verified questions: one module per source and topic, each with a module-level PROBLEMS list."""
