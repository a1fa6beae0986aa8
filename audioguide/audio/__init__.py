"""Audio: decoded clips, chimes, ambience beds, the mix, mastering and ffmpeg."""
