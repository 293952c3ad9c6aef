"""deferral"""
