"""A learned answer head for the OCR reader: candidates from OCR lines, scored by a model."""
