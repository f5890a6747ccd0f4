"""`make bench-emulator`: emulator CPU per call and per image, LocalStack (defaults vs lean) beside MiniStack."""
