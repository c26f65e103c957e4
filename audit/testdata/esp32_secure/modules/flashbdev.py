# the board's frozen block-device module: the audit only needs it to exist
