"""The billing service: not built yet (see the open issues). The package exists so the layout is complete."""
