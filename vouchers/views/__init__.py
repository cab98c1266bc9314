"""Views: thin interfaces that parse input, call one service or selector, and render."""
