"""Tests of the gateway (``router serve``) over real HTTP, with the official ``openai`` SDK as its client."""
