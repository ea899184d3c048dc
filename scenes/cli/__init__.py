"""scenes/cli"""
