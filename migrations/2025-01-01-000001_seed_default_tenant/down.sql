DELETE FROM boards.tenants WHERE slug = 'default';
