enum _PlaceholderEASimulator {}
