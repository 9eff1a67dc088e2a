# A Rack application with its sessions in Redis through Rack::Session::Redis
# (Debian's ruby-redis-rack, on redis-store and redis-rb 4), served by
# WEBrick. Run by server/frameworks_test.go with the Redis address in
# SESSIOND_ADDR; it prints "listening on 127.0.0.1:PORT" and serves the
# endpoints described at webFlow there. The middleware writes the
# marshalled session with SET ... EX under rack:session:<private id> at
# the end of every request that loaded it, and deletes it on :drop.

require 'rack'
require 'rack/session/redis'
require 'webrick'

TTL = 1800
SHORT = 2

host, port = ENV.fetch('SESSIOND_ADDR').split(':')

def show(s)
  s['user'] ? "user=#{s['user']} visits=#{s['visits']}" : 'anonymous'
end

app = lambda do |env|
  req = Rack::Request.new(env)
  s = env['rack.session']
  opts = env['rack.session.options']
  body =
    case req.path
    when '/login'
      opts[:renew] = true # a new session id at login
      s.clear
      s['user'] = req.params['user']
      s['visits'] = 1
      s['short'] = req.params['short'] == '1'
      show(s)
    when '/whoami'
      show(s)
    when '/visit'
      s['visits'] += 1 if s['user']
      show(s)
    when '/logout'
      opts[:drop] = true
      'bye'
    else
      return [404, { 'content-type' => 'text/plain' }, ['not found']]
    end
  opts[:expire_after] = s['short'] ? SHORT : TTL if s['user'] && !opts[:drop]
  [200, { 'content-type' => 'text/plain' }, [body]]
end

stack = Rack::Builder.new do
  use Rack::Session::Redis,
      redis_server: { host: host, port: Integer(port), db: 0, namespace: 'rack:session' },
      key: 'rack.session',
      expire_after: TTL
  run app
end

server = WEBrick::HTTPServer.new(
  BindAddress: '127.0.0.1', Port: 0,
  Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN), AccessLog: []
)
server.mount '/', Rack::Handler::WEBrick, stack.to_app
puts "listening on 127.0.0.1:#{server.config[:Port]}"
$stdout.flush
trap('TERM') { server.shutdown }
server.start
