"""Segmentation model builders written against tf-keras."""
