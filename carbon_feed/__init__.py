"""carbon_feed"""
