"""The people who log in: users and their passwords."""
