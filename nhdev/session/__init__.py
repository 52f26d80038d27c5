"""nhdev.session"""
