"""engine/render"""
