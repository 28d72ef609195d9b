"""The application core's resources: what every service, task and entry point is handed."""

from launch.app.resources import Clock, FixedClock, Resources, SystemClock

__all__ = ["Clock", "FixedClock", "Resources", "SystemClock"]
