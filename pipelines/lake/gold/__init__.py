"""Gold tables: one writer each, built per day from silver and the dimensions.

``songs``: daily_song_plays, artist_top_songs, skip_rates, genre_trends.
``listeners``: user_daily_listening, daily_active_users, retention_cohorts,
country_device_breakdown (pseudonymous: no raw user ids).
"""
