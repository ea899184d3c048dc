"""Small helpers every layer may use (engine, models and scenes alike); imports none of them."""
