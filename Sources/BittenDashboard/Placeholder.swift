enum _PlaceholderBittenDashboard {}
