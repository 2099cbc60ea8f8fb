"""The inbox: Polar export zips dropped into ``$POLAR_HOME/inbox/<user_id>/`` are imported by a sensor."""
