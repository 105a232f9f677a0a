"""Learned maps applied on top of an encoder's vectors: residual maps (query side, or both
sides) and the lexical bridge. They are trained by :mod:`densekit.adapt`; here they are read
from their folders and run, as an :class:`~densekit.encode.adapters.wrapper.AdaptedEncoder`
around the encoder whose vectors they map."""
