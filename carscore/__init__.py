"""carscore: CAR-T toxicity grading and disease-course assessment from day-by-day CSV data."""

__version__ = "0.1.0"
