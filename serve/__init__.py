"""Serve a locked model: batch scoring (`predict`) and explanation reports."""

from serve.predict import predict

__all__ = ["predict"]
