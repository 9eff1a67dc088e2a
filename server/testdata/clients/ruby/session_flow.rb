# frozen_string_literal: true

# redis-rb against sessiond: the session flow of a web app.
#
# Run by server/clients_test.go with Debian's ruby and ruby-redis. The
# address, password, database and client name come from the environment;
# each step prints one "step: value" line, values shown with #inspect so
# that their Ruby type is visible.

require 'redis'

$stdout.sync = true

def out(step, value)
  puts "#{step}: #{value}"
end

def ttl_check(got, want)
  got.is_a?(Integer) && got <= want && got >= want - 10 ? 'ok' : "unexpected #{got.inspect}"
end

def client_info(line)
  fields = line.split.map { |kv| kv.split('=', 2) }.select { |p| p.size == 2 }.to_h
  %w[name db resp lib-name].map { |k| "#{k}=#{fields.fetch(k, '?')}" }.join(' ')
end

begin
  host, port = ENV.fetch('SESSIOND_ADDR').split(':')
  password = ENV['SESSIOND_PASSWORD'].to_s
  name = ENV['SESSIOND_CLIENT_NAME'].to_s
  r = Redis.new(
    host: host, port: Integer(port), db: Integer(ENV.fetch('SESSIOND_DB', '0')),
    password: password.empty? ? nil : password,
    id: name.empty? ? nil : name,
    connect_timeout: 5, timeout: 5, reconnect_attempts: 0
  )
  out 'connect', client_info(r.call(%w[CLIENT INFO]))
  out 'info', r.info('server')['redis_mode'].inspect
  out 'ping', r.ping.inspect

  # Login: the session is written with a TTL.
  out 'login', r.set('sess:abc', 'uid=42;name=ana', ex: 1800).inspect
  out 'setex', r.setex('sess:def', 60, 'uid=7').inspect
  # A request: read and slide the expiry in one round trip...
  out 'getex', r.getex('sess:abc', ex: 1800).inspect
  out 'ttl', ttl_check(r.ttl('sess:abc'), 1800)
  # ...or in two (GET then EXPIRE).
  out 'get', r.get('sess:def').inspect
  out 'expire', r.expire('sess:def', 1800).inspect
  out 'ttl-slid', ttl_check(r.ttl('sess:def'), 1800)
  out 'missing', r.get('sess:nope').inspect
  out 'dbsize', r.dbsize.inspect

  # SCAN over many sessions.
  30.times { |i| r.set(format('sess:scan:%02d', i), 'x', ex: 600) }
  seen = r.scan_each(match: 'sess:scan:*', count: 7).to_a
  out 'scan', "#{seen.size} keys, #{seen.uniq.size} distinct"

  # A wrong-arity command surfaces as the client's reply error type.
  begin
    r.call(%w[GET a b])
    out 'error', 'none'
  rescue Redis::CommandError => e
    out 'error', "#{e.class} #{e.message}"
  end

  # Pipelining without MULTI.
  replies = r.pipelined do |p|
    p.set('sess:p', 'uid=1', ex: 600)
    p.getex('sess:p', ex: 900)
    p.ttl('sess:p')
    p.del('sess:p')
  end
  out 'pipeline', replies.map(&:inspect).join(' ')

  # Logout.
  out 'logout', r.del('sess:abc').inspect
  out 'after-logout', r.get('sess:abc').inspect
  r.quit
  out 'quit', 'ok'
rescue StandardError => e
  warn "FAIL: #{e.class}: #{e.message}"
  exit 1
end
