"""Singer tap for a folder of real-world CSV files."""
