# placeholder block device module for the fixture
