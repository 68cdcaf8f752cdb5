"""pclib - the modules behind scripts/powercut (one module per command family)."""
