"""nhdev.devmode"""
