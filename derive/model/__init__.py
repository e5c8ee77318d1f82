"""The model: the registry of activations and losses, the spec, the notation, the symbolic network and its chain rule."""
