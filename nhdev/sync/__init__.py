"""nhdev.sync"""
