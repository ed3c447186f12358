enum _PlaceholderBittenServices {}
