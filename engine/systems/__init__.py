"""engine/systems"""
