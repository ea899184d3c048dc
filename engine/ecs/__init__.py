"""engine/ecs"""
