enum _PlaceholderBittenCore {}
