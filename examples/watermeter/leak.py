# Night-flow leak detection: a house that never stops drawing water between 02:00 and
# 04:00 has a leak (or a bypass). The detector keeps the minimum flow seen per night hour.


class NightFlow:
    def __init__(self, threshold_lph=2.0, nights=3, start_hour=2, end_hour=4):
        self.threshold_lph = threshold_lph
        self.nights = nights
        self.start_hour = start_hour
        self.end_hour = end_hour
        self.night_min = None
        self.suspect_nights = 0

    def in_window(self, hour):
        return self.start_hour <= hour < self.end_hour

    def observe(self, hour, flow_lph):
        """Feed one flow sample taken at a local hour (0..23)."""
        if self.in_window(hour):
            if self.night_min is None or flow_lph < self.night_min:
                self.night_min = flow_lph
        elif hour == self.end_hour and self.night_min is not None:
            self.end_night()

    def end_night(self):
        if self.night_min is not None and self.night_min >= self.threshold_lph:
            self.suspect_nights += 1
        else:
            self.suspect_nights = 0
        self.night_min = None

    def leaking(self):
        return self.suspect_nights >= self.nights
