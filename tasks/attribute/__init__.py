"""Attribute (top-down): ground real seed instructions in documents with a user, scene and motivation."""
