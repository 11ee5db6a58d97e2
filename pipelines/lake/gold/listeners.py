"""STUB laid by the lead; its helper fills it."""
