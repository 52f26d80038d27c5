"""nhdev.debug"""
