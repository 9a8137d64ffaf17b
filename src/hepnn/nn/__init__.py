"""Reusable layers only: MLP blocks, masked pooling, attention with pair bias, EdgeConv, Lorentz ops."""
