"""Sources: readers that turn a store's data into Segment messages (pure, no database)."""
