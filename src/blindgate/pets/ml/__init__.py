"""Joint training and secure prediction on secret shares."""
