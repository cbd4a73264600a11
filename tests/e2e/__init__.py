"""Helper programs that the end-to-end tests run as real child processes."""
