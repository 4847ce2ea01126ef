#!/usr/bin/env ruby
# frozen_string_literal: true

# rouse's Ruby runtime: runs one Lambda handler behind the Runtime API.
#
# Started as `ruby bootstrap.rb` with the standard Lambda environment:
# AWS_LAMBDA_RUNTIME_API (host:port), _HANDLER (`file.method`, also
# `dir/file.method` and `file.Module::Class.method`), LAMBDA_TASK_ROOT (the
# code directory, also the cwd and on $LOAD_PATH), AWS_LAMBDA_FUNCTION_NAME /
# _VERSION / _MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME / _STREAM_NAME.
#
# The handler is called as Lambda's Ruby runtime calls it:
# `handler(event:, context:)`. The file is loaded once, so its state lives as
# long as the process. Stdlib only.

require 'json'
require 'net/http'

# Handler output reaches the log as it is written, not when a buffer fills.
$stdout.sync = true
$stderr.sync = true

module RouseRuntime
  API_PREFIX = '/2018-06-01/runtime'
  ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type'
  # Sent for errors raised by the handler; the error's class is in the body.
  UNHANDLED = 'Runtime.Unhandled'

  # An init failure with Lambda's error type (`Runtime.ImportModuleError`...).
  class InitError < StandardError
    attr_reader :error_type, :stack

    def initialize(error_type, message, stack = [])
      super(message)
      @error_type = error_type
      @stack = stack
    end
  end

  # Runtime API calls over one kept-alive connection.
  class Client
    def initialize(address)
      host, _, port = address.rpartition(':')
      host = host.delete_prefix('[').delete_suffix(']')
      @http = Net::HTTP.new(host, Integer(port, 10))
      # Long-polling /next waits for an invocation as long as it takes.
      @http.read_timeout = nil
      @http.keep_alive_timeout = 3600
      @http.start
    end

    def next_invocation
      response = @http.request(Net::HTTP::Get.new("#{API_PREFIX}/invocation/next"))
      unless response.code == '200'
        raise "Runtime API next answered #{response.code}: #{response.body.to_s[0, 500]}"
      end

      response
    end

    def post(path, body, headers = {})
      request = Net::HTTP::Post.new(API_PREFIX + path, { 'Content-Type' => 'application/json' }.merge(headers))
      request.body = body
      response = @http.request(request)
      # 413 is the platform's business (it reports ResponseSizeTooLarge to the
      # caller); anything else is worth a line in the log.
      code = response.code.to_i
      if code >= 300 && code != 413
        warn "bootstrap: POST #{path} answered #{code}: #{response.body.to_s[0, 500]}"
      end
      response
    end
  end

  # What Lambda's Ruby runtime passes as `context:`.
  class Context
    attr_reader :aws_request_id, :invoked_function_arn, :function_name, :function_version,
                :memory_limit_in_mb, :log_group_name, :log_stream_name, :deadline_ms,
                :client_context, :identity

    def initialize(request_id, deadline_ms, invoked_function_arn, client_context, identity)
      @aws_request_id = request_id
      @deadline_ms = deadline_ms
      @invoked_function_arn = invoked_function_arn
      @client_context = client_context
      @identity = identity
      @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
      @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
      @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']
      @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
      @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
    end

    def get_remaining_time_in_millis # rubocop:disable Naming/AccessorMethodName
      [@deadline_ms - (Time.now.to_f * 1000).to_i, 0].max
    end
  end

  module_function

  # The backtrace without this file's frames: users care about their code.
  def user_frames(backtrace)
    (backtrace || []).reject { |line| line.start_with?("#{__FILE__}:") }
  end

  # `file.method` or `file.Module::Class.method` → something to `call`.
  def load_handler(handler, task_root)
    file, dot, rest = handler.partition('.')
    if dot.empty? || file.empty? || rest.empty?
      raise InitError.new('Runtime.MalformedHandlerName', "Bad handler #{handler}: expected file.method")
    end

    path = File.expand_path(file, task_root)
    begin
      require path
    rescue LoadError => e
      # The handler names the file relative to the task root; so does the message.
      raise InitError.new('Runtime.ImportModuleError', "Error loading #{file}: #{e.message.sub(path, file)}",
                          user_frames(e.backtrace))
    rescue SyntaxError => e
      raise InitError.new('Runtime.UserCodeSyntaxError', e.message, user_frames(e.backtrace))
    rescue StandardError, ScriptError => e
      raise InitError.new(e.class.name.to_s, e.message, user_frames(e.backtrace))
    end

    owner_name, _, method_name = rest.rpartition('.')
    owner =
      if owner_name.empty?
        # A top-level `def` is a private method of Object.
        Object.new
      else
        begin
          Object.const_get(owner_name)
        rescue NameError
          raise InitError.new('Runtime.HandlerNotFound', "Handler not found: #{handler}: #{owner_name} is not defined")
        end
      end
    unless owner.respond_to?(method_name, true)
      raise InitError.new('Runtime.HandlerNotFound', "Handler not found: #{handler}")
    end

    owner.method(method_name)
  end

  def error_body(error_type, message, stack)
    JSON.generate({ 'errorMessage' => message, 'errorType' => error_type, 'stackTrace' => stack })
  end

  def report_init_error(client, error)
    warn "[ERROR] #{error.error_type}: #{error.message}"
    header = error.error_type.start_with?('Runtime.') ? error.error_type : UNHANDLED
    client.post('/init/error', error_body(error.error_type, error.message, error.stack),
                ERROR_TYPE_HEADER => header)
  end

  def post_error(client, request_id, error_type, message, stack, header)
    client.post("/invocation/#{request_id}/error", error_body(error_type, message, stack),
                ERROR_TYPE_HEADER => header)
  end

  def parse_json_header(value)
    return nil if value.nil? || value.empty?

    JSON.parse(value)
  rescue JSON::ParserError
    nil
  end

  def invoke(client, handler, response)
    request_id = response['Lambda-Runtime-Aws-Request-Id']
    raise 'Runtime API next answered without Lambda-Runtime-Aws-Request-Id' if request_id.nil? || request_id.empty?

    deadline_ms = Integer(response['Lambda-Runtime-Deadline-Ms'] || '0', 10, exception: false) || 0
    trace_id = response['Lambda-Runtime-Trace-Id']
    if trace_id.nil? || trace_id.empty?
      ENV.delete('_X_AMZN_TRACE_ID')
    else
      ENV['_X_AMZN_TRACE_ID'] = trace_id
    end
    context = Context.new(request_id, deadline_ms, response['Lambda-Runtime-Invoked-Function-Arn'],
                          parse_json_header(response['Lambda-Runtime-Client-Context']),
                          parse_json_header(response['Lambda-Runtime-Cognito-Identity']))
    begin
      event = JSON.parse(response.body.to_s)
    rescue JSON::ParserError => e
      post_error(client, request_id, 'Runtime.UnmarshalError', "Unable to unmarshal input: #{e.message}", [],
                 'Runtime.UnmarshalError')
      return
    end

    begin
      result = handler.call(event: event, context: context)
    rescue StandardError, ScriptError, NotImplementedError => e
      stack = user_frames(e.backtrace)
      warn "[ERROR] #{e.class.name}: #{e.message}"
      post_error(client, request_id, e.class.name.to_s, e.message, stack, UNHANDLED)
      return
    end

    begin
      body = JSON.generate(result)
    rescue StandardError => e
      post_error(client, request_id, 'Runtime.MarshalError', "Unable to marshal response: #{e.message}", [],
                 'Runtime.MarshalError')
      return
    end
    client.post("/invocation/#{request_id}/response", body)
  end

  def main
    address = ENV['AWS_LAMBDA_RUNTIME_API']
    if address.nil? || address.empty?
      warn 'bootstrap: AWS_LAMBDA_RUNTIME_API is not set'
      return 1
    end
    task_root = ENV['LAMBDA_TASK_ROOT'] || Dir.pwd
    $LOAD_PATH.unshift(task_root) unless $LOAD_PATH.include?(task_root)
    client = Client.new(address)

    begin
      handler = load_handler(ENV['_HANDLER'].to_s, task_root)
    rescue InitError => e
      report_init_error(client, e)
      return 1
    end

    loop do
      invoke(client, handler, client.next_invocation)
    end
  end
end

exit(RouseRuntime.main) if $PROGRAM_NAME == __FILE__
