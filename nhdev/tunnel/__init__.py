"""nhdev.tunnel"""
